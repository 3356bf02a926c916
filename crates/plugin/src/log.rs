//! The plugin's optional log file (`logFile`, `logLevel`). Never stdout:
//! stdout belongs to the result. A log that cannot be written is ignored,
//! since logging must never fail a pod.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl FromStr for Level {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Ok(Level::Error),
            "warn" | "warning" => Ok(Level::Warn),
            "info" => Ok(Level::Info),
            "debug" => Ok(Level::Debug),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        })
    }
}

struct Sink {
    file: Mutex<File>,
    level: Level,
    /// Prefix naming the invocation, e.g. `ADD abc123/eth0`.
    context: String,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Start logging to `path` at `level`. Only the first call has an effect.
pub fn init(path: &Path, level: Level, context: String) {
    if let Ok(file) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = SINK.set(Sink {
            file: Mutex::new(file),
            level,
            context,
        });
    }
}

pub fn log(level: Level, msg: fmt::Arguments<'_>) {
    let Some(sink) = SINK.get() else { return };
    if level > sink.level {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let line = format!(
        "{}.{:06} {} pid={} {}: {}\n",
        now.as_secs(),
        now.subsec_micros(),
        level,
        std::process::id(),
        sink.context,
        msg
    );
    if let Ok(mut f) = sink.file.lock() {
        let _ = f.write_all(line.as_bytes());
    }
}

#[macro_export]
macro_rules! log_at {
    ($lvl:ident, $($arg:tt)*) => {
        $crate::log::log($crate::log::Level::$lvl, format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!("DEBUG".parse::<Level>(), Ok(Level::Debug));
        assert_eq!("warning".parse::<Level>(), Ok(Level::Warn));
        assert!("trace".parse::<Level>().is_err());
        assert!(Level::Error < Level::Debug);
    }
}
