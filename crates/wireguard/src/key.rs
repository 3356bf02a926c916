//! Curve25519 keys: the node's private key (generated on the node, kept
//! in a file with mode 0600, written atomically, never logged: its `Debug`
//! says `PrivateKey(<redacted>)` and it has no `Display`), and public keys
//! as published on the Node (base64, as `wg` shows them).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::WgError;

/// Key length in bytes.
pub const KEY_LEN: usize = 32;

/// A private key. Not `Display`, not `Clone`-to-string; `Debug` redacts.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; KEY_LEN]);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        // Best effort: the bytes do not outlive the key in this buffer.
        self.0 = [0; KEY_LEN];
    }
}

/// A public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub(crate) [u8; KEY_LEN]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl std::str::FromStr for PublicKey {
    type Err = WgError;
    fn from_str(s: &str) -> Result<PublicKey, WgError> {
        decode_base64(s).map(PublicKey)
    }
}

fn decode_base64(s: &str) -> Result<[u8; KEY_LEN], WgError> {
    let bytes = STANDARD
        .decode(s.trim())
        .map_err(|_| WgError::BadKey("not base64".into()))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| WgError::BadKey(format!("{} bytes, want {KEY_LEN}", b.len())))
}

/// 64 hex digits (the UAPI's form).
pub(crate) fn decode_hex(s: &str) -> Result<[u8; KEY_LEN], WgError> {
    let s = s.as_bytes();
    if s.len() != 2 * KEY_LEN {
        return Err(WgError::BadKey(format!("{} hex digits, want 64", s.len())));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(WgError::BadKey("not hex".into())),
    };
    let mut out = [0u8; KEY_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(s[2 * i])? << 4 | digit(s[2 * i + 1])?;
    }
    Ok(out)
}

pub(crate) fn encode_hex(b: &[u8; KEY_LEN]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl PrivateKey {
    /// A fresh key from the OS's random source, clamped as Curve25519
    /// wants (as `wg genkey` does).
    pub fn generate() -> PrivateKey {
        let mut b = x25519_dalek::StaticSecret::random_from_rng(rand_core::OsRng).to_bytes();
        b[0] &= 248;
        b[31] = (b[31] & 127) | 64;
        PrivateKey(b)
    }

    pub fn from_bytes(b: [u8; KEY_LEN]) -> PrivateKey {
        PrivateKey(b)
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        let s = x25519_dalek::StaticSecret::from(self.0);
        PublicKey(*x25519_dalek::PublicKey::from(&s).as_bytes())
    }

    /// The raw bytes, for the drivers (genl attribute, UAPI hex).
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Reads the key in `path` (base64, as `wg genkey` writes it), or
    /// makes one and writes it there (mode 0600, temp file + rename) when
    /// there is none. A file others can read, or that holds no key, is an
    /// error and is left as it is.
    pub fn load_or_create(path: &Path) -> Result<(PrivateKey, bool), WgError> {
        let err = |what| {
            move |source| WgError::KeyFile {
                path: path.to_path_buf(),
                what,
                source,
            }
        };
        match fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(WgError::KeyFileContent {
                        path: path.to_path_buf(),
                        why: format!("mode {mode:04o}: others may read it (want 0600)"),
                    });
                }
                let text = fs::read_to_string(path).map_err(err("read"))?;
                let key = decode_base64(&text).map_err(|e| WgError::KeyFileContent {
                    path: path.to_path_buf(),
                    why: e.to_string(),
                })?;
                Ok((PrivateKey(key), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = PrivateKey::generate();
                write_key_file(path, &key)?;
                Ok((key, true))
            }
            Err(e) => Err(err("stat")(e)),
        }
    }
}

/// Writes `key` to `path`: temp file (mode 0600 from its creation) in the
/// same directory, fsync, rename, fsync of the directory.
pub fn write_key_file(path: &Path, key: &PrivateKey) -> Result<(), WgError> {
    let err = |what| {
        move |source| WgError::KeyFile {
            path: path.to_path_buf(),
            what,
            source,
        }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(err("create its directory"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err("create"))?;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(err("chmod"))?;
        let mut text = STANDARD.encode(key.0);
        text.push('\n');
        f.write_all(text.as_bytes()).map_err(err("write"))?;
        f.sync_all().map_err(err("fsync"))?;
        fs::rename(&tmp, path).map_err(err("rename"))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_of_a_known_private_key() {
        // RFC 7748 §6.1: Alice's private and public keys.
        let private =
            decode_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").unwrap();
        let public =
            decode_hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a").unwrap();
        assert_eq!(
            PrivateKey::from_bytes(private).public_key(),
            PublicKey(public)
        );
    }

    #[test]
    fn generated_keys_are_clamped_and_differ() {
        let a = PrivateKey::generate();
        let b = PrivateKey::generate();
        assert_ne!(a, b);
        assert_eq!(a.bytes()[0] & 7, 0);
        assert_eq!(a.bytes()[31] & 0x80, 0);
        assert_eq!(a.bytes()[31] & 0x40, 0x40);
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let k = PrivateKey::from_bytes([0xab; 32]);
        let shown = format!("{k:?} {:?}", Some(&k));
        assert!(!shown.contains("ab"), "{shown}");
        assert!(!shown.contains(&STANDARD.encode([0xab; 32])), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn public_key_base64_roundtrip_and_bad_input() {
        let p = PrivateKey::generate().public_key();
        assert_eq!(p.to_string().parse::<PublicKey>().unwrap(), p);
        assert_eq!(p.to_string().len(), 44);
        for bad in ["", "abc", "!!!!", &STANDARD.encode([1u8; 31])] {
            assert!(bad.parse::<PublicKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hex_roundtrip() {
        let b = [0x5a; 32];
        assert_eq!(decode_hex(&encode_hex(&b)).unwrap(), b);
        assert!(decode_hex("zz").is_err());
        assert!(decode_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn key_file_is_made_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/wg.key");
        let (k1, made) = PrivateKey::load_or_create(&path).unwrap();
        assert!(made);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let (k2, made) = PrivateKey::load_or_create(&path).unwrap();
        assert!(!made);
        assert_eq!(k1, k2);
        // No temp file left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["wg.key"]);
    }

    #[test]
    fn key_file_readable_by_others_or_garbage_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wg.key");
        let k = PrivateKey::generate();
        write_key_file(&path, &k).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = PrivateKey::load_or_create(&path).unwrap_err();
        assert!(e.to_string().contains("0644"), "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "not a key\n").unwrap();
        let e = PrivateKey::load_or_create(&path).unwrap_err();
        assert!(matches!(e, WgError::KeyFileContent { .. }), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "not a key\n");
    }
}
