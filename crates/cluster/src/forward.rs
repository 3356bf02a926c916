//! The host's way in: a TCP forwarder listening on the host's loopback
//! whose outgoing connections are made inside the router's netns, so a
//! kubectl on the host reaches the API server (172.16.97.1:6443 exists
//! only in the lab's namespaces) with nothing created in the host's
//! network namespace but a loopback listener. TLS passes through
//! untouched (the API server's certificate names 127.0.0.1).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use ferry_netns::NetNs;

use crate::error::{ClusterError, Result};

/// Binds 127.0.0.1 on a free port; the listener and its port.
pub fn bind() -> Result<(TcpListener, u16)> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(ClusterError::io("binding", "127.0.0.1:0"))?;
    let port = l
        .local_addr()
        .map_err(ClusterError::io("reading", "listener"))?
        .port();
    Ok((l, port))
}

/// Connects to `to` from inside the netns at `netns` (on a dedicated
/// thread, as every namespace switch in ferry is made).
pub fn connect_in(netns: &NetNs, to: SocketAddr) -> Result<TcpStream> {
    netns
        .run(move || TcpStream::connect_timeout(&to, Duration::from_secs(5)))
        .map_err(|e| ClusterError::Invalid(e.to_string()))?
        .map_err(ClusterError::io("connecting to", to.to_string()))
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Serves forever: every connection to `listener` is piped both ways to
/// `to`, connected from inside the netns at `netns_path`.
pub fn serve(listener: TcpListener, netns_path: &Path, to: SocketAddr) -> Result<()> {
    let netns = NetNs::open(netns_path).map_err(|e| ClusterError::Invalid(e.to_string()))?;
    for conn in listener.incoming() {
        let Ok(client) = conn else { continue };
        let Ok(upstream) = connect_in(&netns, to) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
            continue;
        };
        std::thread::spawn(move || pipe(client, upstream));
        std::thread::spawn(move || pipe(u2, c2));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_both_ways_into_a_netns() {
        // An echo server inside a fresh netns, reached from the host's
        // loopback through the forwarder.
        let name = format!("ftfw{}-ns", std::process::id());
        let path = ferry_netns::create_named(&name).unwrap();
        struct Gone(String);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = ferry_netns::delete_named(&self.0);
            }
        }
        let _gone = Gone(name.clone());
        let ns = NetNs::open(&path).unwrap();
        let server = ns
            .run(|| {
                std::process::Command::new("ip")
                    .args(["link", "set", "lo", "up"])
                    .status()
                    .unwrap();
                TcpListener::bind("127.0.0.1:7777").unwrap()
            })
            .unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        });
        let (listener, port) = bind().unwrap();
        let p2 = path.clone();
        std::thread::spawn(move || serve(listener, &p2, "127.0.0.1:7777".parse().unwrap()));
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
    }
}
