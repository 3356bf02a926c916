//! A packet capture without tcpdump: an `AF_PACKET` socket opened inside
//! a named netns (on a thread that enters it and exits), reading every
//! frame of one interface until stopped. For tests that must show what
//! crossed a wire (e.g. no pod payload in clear over a tunnel).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ferry_netns::NetNs;
use nix::sys::socket::{
    recvfrom, setsockopt, socket, sockopt, AddressFamily, LinkAddr, SockFlag, SockProtocol,
    SockType,
};

/// Frames seen on one interface, collected by a thread.
pub struct Sniffer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Vec<u8>>>>,
}

impl Sniffer {
    /// Starts capturing every frame (both directions) of `ifname` in the
    /// named netns `netns`.
    pub fn start(netns: &str, ifname: &str) -> Sniffer {
        let ns = NetNs::open(&Path::new("/run/netns").join(netns)).expect("open netns");
        let ifname = ifname.to_string();
        let (fd, ifindex): (OwnedFd, usize) = ns
            .run(move || {
                let fd = socket(
                    AddressFamily::Packet,
                    SockType::Raw,
                    SockFlag::SOCK_CLOEXEC,
                    SockProtocol::EthAll,
                )
                .expect("AF_PACKET socket");
                // An ioctl on a socket of this namespace (not /sys, which
                // is the mounting namespace's).
                let idx = nix::net::if_::if_nametoindex(ifname.as_str()).ok();
                (fd, idx.map(|i| i as usize))
            })
            .map(|(fd, idx)| (fd, idx.expect("interface in the netns")))
            .expect("enter netns");
        let tv = nix::sys::time::TimeVal::new(0, 200_000);
        setsockopt(&fd, sockopt::ReceiveTimeout, &tv).expect("SO_RCVTIMEO");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut frames = Vec::new();
            let mut buf = vec![0u8; 65536];
            while !flag.load(Ordering::SeqCst) {
                match recvfrom::<LinkAddr>(fd.as_raw_fd(), &mut buf) {
                    Ok((n, Some(a))) if a.ifindex() == ifindex => frames.push(buf[..n].to_vec()),
                    _ => {}
                }
            }
            frames
        });
        std::thread::sleep(Duration::from_millis(50));
        Sniffer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns the frames.
    pub fn stop(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("capture thread")
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The UDP destination port of an Ethernet frame carrying IPv4 or IPv6
/// (no extension headers), if it is UDP.
pub fn udp_dst_port(frame: &[u8]) -> Option<u16> {
    let ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    let l4 = match ethertype {
        0x0800 if *frame.get(23)? == 17 => 14 + usize::from(frame.get(14)? & 0x0f) * 4,
        0x86dd if *frame.get(20)? == 17 => 14 + 40,
        _ => return None,
    };
    Some(u16::from_be_bytes(
        frame.get(l4 + 2..l4 + 4)?.try_into().ok()?,
    ))
}
