use std::fmt;
use std::io;

/// What went wrong talking to nf_tables.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The requested table is not something ferry can write (bad name,
    /// interface name, ...). Nothing was sent.
    #[error("invalid masquerade table: {0}")]
    Invalid(String),

    /// The netlink socket itself failed (socket, send, recv).
    #[error("nfnetlink {op}: {source}")]
    Socket {
        op: &'static str,
        #[source]
        source: io::Error,
    },

    /// The kernel refused a batch; nothing of it was applied. Every
    /// message the kernel complained about is listed.
    #[error("nf_tables refused the batch for table {table}: {}", List(errors))]
    Batch {
        table: String,
        errors: Vec<MessageError>,
    },

    /// The kernel refused a single request (a GET or a dump).
    #[error("{op} {target}: {}{}", io::Error::from_raw_os_error(*errno), Ext(message))]
    Kernel {
        op: &'static str,
        target: String,
        errno: i32,
        message: Option<String>,
    },

    /// The kernel's answer made no sense to us.
    #[error("{op} {target}: nfnetlink protocol error: {detail}")]
    Protocol {
        op: &'static str,
        target: String,
        detail: String,
    },
}

impl NftError {
    /// The errno the kernel answered with: for a batch, the first one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NftError::Kernel { errno, .. } => Some(*errno),
            NftError::Batch { errors, .. } => errors.first().map(|e| e.errno),
            NftError::Socket { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn protocol(op: &'static str, target: &str, detail: impl Into<String>) -> NftError {
        NftError::Protocol {
            op,
            target: target.to_string(),
            detail: detail.into(),
        }
    }
}

/// One message of a batch that the kernel refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageError {
    /// Which message, e.g. `NEWRULE postrouting (V4 masquerade)`; for an
    /// error the kernel pins on the batch as a whole, `batch`.
    pub what: String,
    /// The positive errno.
    pub errno: i32,
    /// The kernel's extended-ack text, when it gave one.
    pub message: Option<String>,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}{}",
            self.what,
            io::Error::from_raw_os_error(self.errno),
            Ext(&self.message)
        )
    }
}

struct List<'a>(&'a [MessageError]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

struct Ext<'a>(&'a Option<String>);

impl fmt::Display for Ext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(m) => write!(f, " ({m})"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_context() {
        let e = NftError::Batch {
            table: "ferry".into(),
            errors: vec![
                MessageError {
                    what: "NEWRULE postrouting (V4 masquerade)".into(),
                    errno: 2,
                    message: Some("set not found".into()),
                },
                MessageError {
                    what: "batch".into(),
                    errno: 1,
                    message: None,
                },
            ],
        };
        let s = e.to_string();
        assert!(s.contains("table ferry"), "{s}");
        assert!(
            s.contains("NEWRULE postrouting (V4 masquerade): No such file"),
            "{s}"
        );
        assert!(
            s.contains("(set not found); batch: Operation not permitted"),
            "{s}"
        );
        assert_eq!(e.errno(), Some(2));
        let k = NftError::Kernel {
            op: "GETTABLE",
            target: "inet ferry".into(),
            errno: 2,
            message: None,
        };
        assert_eq!(
            k.to_string().split(" (os").next().unwrap(),
            "GETTABLE inet ferry: No such file or directory"
        );
    }
}
