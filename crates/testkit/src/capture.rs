//! Captures of what `nft` sends (`nft --debug=mnl`, converted to one
//! message a line: the nlmsg type in decimal, a space, the hex of
//! everything after the nlmsghdr; `#` lines are comments), for tests that
//! compare their own netlink messages byte for byte.

/// (nlmsg type, everything after the nlmsghdr) per message of a capture.
pub fn nft_messages(text: &str) -> Vec<(u16, Vec<u8>)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (ty, hex) = l.split_once(' ').expect("type and hex");
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (ty.parse().expect("decimal nlmsg type"), bytes)
        })
        .collect()
}
