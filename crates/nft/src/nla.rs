//! Netlink attributes (TLVs): a writer that appends to a message buffer
//! and a reader over a received attribute stream. nf_tables integers are
//! big-endian on the wire.

use crate::sys::{NLA_F_NESTED, NLA_TYPE_MASK};

/// Rounds up to the 4-byte netlink alignment.
pub(crate) const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Appends attributes to a buffer (the tail of a message being built).
pub struct Writer<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Writer<'a> {
        Writer { buf }
    }

    /// One attribute with a raw value, padded to 4 bytes.
    pub fn put(&mut self, ty: u16, value: &[u8]) {
        let len = 4 + value.len();
        let len16 = u16::try_from(len).expect("netlink attribute over 64 KiB");
        self.buf.extend_from_slice(&len16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }

    pub fn u32(&mut self, ty: u16, value: u32) {
        self.put(ty, &value.to_be_bytes());
    }

    /// A NUL-terminated string.
    pub fn str(&mut self, ty: u16, value: &str) {
        let start = self.buf.len();
        let len = 4 + value.len() + 1;
        let len16 = u16::try_from(len).expect("netlink attribute over 64 KiB");
        self.buf.extend_from_slice(&len16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        debug_assert_eq!(self.buf.len() - start, len);
        self.pad();
    }

    /// A nested attribute whose content `f` writes.
    pub fn nest(&mut self, ty: u16, f: impl FnOnce(&mut Writer<'_>)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        f(&mut Writer::new(self.buf));
        let len = u16::try_from(self.buf.len() - start).expect("nested attribute over 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends already encoded attributes.
    pub fn raw(&mut self, encoded: &[u8]) {
        debug_assert_eq!(encoded.len() % 4, 0);
        self.buf.extend_from_slice(encoded);
    }

    fn pad(&mut self) {
        let padded = align4(self.buf.len());
        self.buf.resize(padded, 0);
    }
}

/// One received attribute.
#[derive(Clone, Copy, Debug)]
pub struct Attr<'a> {
    pub ty: u16,
    pub value: &'a [u8],
}

impl<'a> Attr<'a> {
    pub fn u32(&self) -> Option<u32> {
        Some(u32::from_be_bytes(self.value.get(..4)?.try_into().ok()?))
    }

    pub fn u64(&self) -> Option<u64> {
        Some(u64::from_be_bytes(self.value.get(..8)?.try_into().ok()?))
    }

    /// A string up to its NUL (or the end of the value).
    pub fn str(&self) -> String {
        let end = self
            .value
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.value.len());
        String::from_utf8_lossy(&self.value[..end]).into_owned()
    }

    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.value)
    }
}

/// Iterates over an attribute stream; stops at the first malformed one.
#[derive(Clone, Debug)]
pub struct Attrs<'a> {
    data: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub fn new(data: &'a [u8]) -> Attrs<'a> {
        Attrs { data }
    }

    /// The first attribute of type `ty`.
    pub fn get(&self, ty: u16) -> Option<Attr<'a>> {
        self.clone().find(|a| a.ty == ty)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Attr<'a>;

    fn next(&mut self) -> Option<Attr<'a>> {
        let header = self.data.get(..4)?;
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let ty = u16::from_ne_bytes([header[2], header[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > self.data.len() {
            self.data = &[];
            return None;
        }
        let value = &self.data[4..len];
        self.data = self.data.get(align4(len)..).unwrap_or(&[]);
        Some(Attr { ty, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_and_read_back() {
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf);
        w.str(1, "ferry");
        w.u32(2, 0x0102_0304);
        w.nest(3, |w| {
            w.put(1, &[0xaa]);
            w.nest(2, |_| {});
        });
        // "ferry\0" = 6 bytes + 4 header = 10, padded to 12.
        assert_eq!(&buf[..4], &[10, 0, 1, 0]);
        assert_eq!(&buf[4..12], b"ferry\0\0\0");
        assert_eq!(&buf[12..20], &[8, 0, 2, 0, 1, 2, 3, 4]);
        // nest: header 4 + (5 padded to 8) + empty nest 4 = 16, flagged.
        assert_eq!(&buf[20..24], &[16, 0, 3, 0x80]);
        assert_eq!(buf.len(), 36);

        let attrs: Vec<_> = Attrs::new(&buf).collect();
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[0].str(), "ferry");
        assert_eq!(attrs[1].u32(), Some(0x0102_0304));
        assert_eq!(attrs[2].ty, 3, "nested flag is masked");
        let inner: Vec<_> = attrs[2].nested().collect();
        assert_eq!(inner.len(), 2);
        assert_eq!(inner[0].value, &[0xaa]);
        assert!(inner[1].value.is_empty());
        assert_eq!(
            Attrs::new(&buf).get(2).and_then(|a| a.u32()),
            Some(0x0102_0304)
        );
        assert!(Attrs::new(&buf).get(9).is_none());
    }

    #[test]
    fn malformed_input_stops_iteration() {
        // Length beyond the buffer, length below the header, truncated header.
        assert_eq!(Attrs::new(&[200, 0, 1, 0, 0, 0]).count(), 0);
        assert_eq!(Attrs::new(&[2, 0, 1, 0, 8, 0, 1, 0]).count(), 0);
        assert_eq!(Attrs::new(&[8, 0]).count(), 0);
        // A good attribute followed by garbage yields just the good one.
        let data = [8, 0, 1, 0, 0, 0, 0, 7, 0xff, 0xff];
        let got: Vec<_> = Attrs::new(&data).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].u32(), Some(7));
        // Short integers are None, not a panic.
        assert_eq!(
            Attrs::new(&[5, 0, 1, 0, 1, 0, 0, 0]).next().unwrap().u32(),
            None
        );
    }
}
