//! tc, as far as ferry needs it: a `clsact` qdisc and, on its ingress
//! hook, one `bpf` filter in direct-action mode at ferry's own priority
//! ([`FERRY_TC_PRIO`]). Other filters on the same hook are never touched.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::tc::{
    TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{NetlinkError, Target};
use crate::Handle;

/// ferry's filter priority ("pref") on the ingress hook.
pub const FERRY_TC_PRIO: u16 = 0xfe00;
/// ferry's filter handle at that priority.
const FERRY_TC_HANDLE: u16 = 1;
/// `htons(ETH_P_ALL)`: the filter sees every protocol.
const PROTO_ALL: u16 = 0x0003_u16.to_be();

const CLSACT: TcHandle = TcHandle {
    major: 0xffff,
    minor: 0xfff1,
};
const CLSACT_INGRESS: TcHandle = TcHandle {
    major: 0xffff,
    minor: TcHandle::MIN_INGRESS,
};

fn filter_msg(ifindex: u32) -> TcMessage {
    let mut msg = TcMessage::with_index(ifindex as i32);
    msg.header.parent = CLSACT_INGRESS;
    msg.header.handle = TcHandle {
        major: 0,
        minor: FERRY_TC_HANDLE,
    };
    msg.header.info = (u32::from(FERRY_TC_PRIO) << 16) | u32::from(PROTO_ALL);
    msg
}

impl Handle {
    /// Adds a `clsact` qdisc to the link unless it has one.
    pub fn ensure_clsact(&mut self, ifindex: u32) -> Result<(), NetlinkError> {
        let mut msg = TcMessage::with_index(ifindex as i32);
        msg.header.parent = CLSACT;
        msg.header.handle = TcHandle {
            major: 0xffff,
            minor: 0,
        };
        msg.attributes.push(TcAttribute::Kind("clsact".into()));
        match self.request(
            "RTM_NEWQDISC",
            &Target::Index(ifindex),
            RouteNetlinkMessage::NewQueueDiscipline(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(_) => Ok(()),
            Err(e) if e.is_exists() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs `prog` (a `BPF_PROG_TYPE_SCHED_CLS` program) on every packet
    /// the link receives, in direct-action mode: adds `clsact` if needed,
    /// then creates ferry's filter or replaces its program atomically.
    pub fn attach_bpf_ingress(
        &mut self,
        ifindex: u32,
        prog: BorrowedFd<'_>,
        name: &str,
    ) -> Result<(), NetlinkError> {
        self.ensure_clsact(ifindex)?;
        let mut msg = filter_msg(ifindex);
        msg.attributes.push(TcAttribute::Kind("bpf".into()));
        msg.attributes.push(TcAttribute::Options(vec![
            TcOption::Bpf(TcFilterBpfOption::ProgFd(prog.as_raw_fd() as u32)),
            TcOption::Bpf(TcFilterBpfOption::ProgName(name.into())),
            TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
        ]));
        self.request(
            "RTM_NEWTFILTER",
            &Target::Index(ifindex),
            RouteNetlinkMessage::NewTrafficFilter(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// Removes ferry's ingress filter; `Ok(false)` when the link, its
    /// `clsact` or the filter is not there. The qdisc stays (others' filters
    /// may hang off it; it costs nothing empty).
    pub fn detach_bpf_ingress(&mut self, ifindex: u32) -> Result<bool, NetlinkError> {
        match self.request(
            "RTM_DELTFILTER",
            &Target::Index(ifindex),
            RouteNetlinkMessage::DelTrafficFilter(filter_msg(ifindex)),
            0,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() || e.errno() == Some(libc::EINVAL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The kernel id of the program ferry's ingress filter runs on the
    /// link, or `None` without one.
    pub fn bpf_ingress_prog_id(&mut self, ifindex: u32) -> Result<Option<u32>, NetlinkError> {
        let mut msg = TcMessage::with_index(ifindex as i32);
        msg.header.parent = CLSACT_INGRESS;
        let replies = match self.dump(
            "RTM_GETTFILTER",
            &Target::Index(ifindex),
            RouteNetlinkMessage::GetTrafficFilter(msg),
        ) {
            Ok(r) => r,
            Err(e) if e.is_not_found() || e.errno() == Some(libc::EINVAL) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(replies.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewTrafficFilter(f)
                if f.header.info >> 16 == u32::from(FERRY_TC_PRIO) =>
            {
                f.attributes.iter().find_map(|a| match a {
                    TcAttribute::Options(opts) => opts.iter().find_map(|o| match o {
                        TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => Some(*id),
                        _ => None,
                    }),
                    _ => None,
                })
            }
            _ => None,
        }))
    }
}
