use ferry_nft::NftError;

/// What went wrong writing or reading the policy table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ruleset cannot be encoded (a bad name, an element that does not
    /// fit its set, a change to a set the ruleset lacks). Nothing was sent.
    #[error("invalid ruleset for table inet {table}: {detail}")]
    Invalid { table: String, detail: String },

    /// nf_tables (or the netlink socket) refused or failed `op`; for a
    /// batch, nothing of it was applied.
    #[error("{op} table inet {table}: {source}")]
    Nft {
        op: &'static str,
        table: String,
        #[source]
        source: NftError,
    },
}

impl Error {
    pub(crate) fn nft<'a>(op: &'static str, table: &'a str) -> impl FnOnce(NftError) -> Error + 'a {
        move |source| Error::Nft {
            op,
            table: table.to_string(),
            source,
        }
    }

    /// The errno the kernel answered with, if it did.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Nft { source, .. } => source.errno(),
            Error::Invalid { .. } => None,
        }
    }
}
