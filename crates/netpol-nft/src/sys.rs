//! The nf_tables numbers this crate needs beyond `ferry_nft::raw::consts`
//! (kernel uapi `linux/netfilter/nf_tables.h`, nft's datatypes, libnftnl
//! userdata types).

pub use ferry_nft::raw::consts::*;

pub const NFT_MSG_DELSETELEM: u16 = 14;
pub const NFT_MSG_NEWOBJ: u16 = 18;
pub const NFT_MSG_GETOBJ: u16 = 19;

pub const NFTA_TABLE_FLAGS_DORMANT: u32 = 0x1;
pub const NFTA_CHAIN_USERDATA: u16 = 12;
pub const NFTA_RULE_USERDATA: u16 = 7;
pub const NF_INET_FORWARD: u32 = 2;

// enum nft_object_attributes
pub const NFTA_OBJ_TABLE: u16 = 1;
pub const NFTA_OBJ_NAME: u16 = 2;
pub const NFTA_OBJ_TYPE: u16 = 3;
pub const NFTA_OBJ_DATA: u16 = 4;
pub const NFT_OBJECT_COUNTER: u32 = 1;

// sets
pub const NFTA_SET_DATA_TYPE: u16 = 6;
pub const NFTA_SET_DATA_LEN: u16 = 7;
pub const NFTA_SET_DESC: u16 = 9;
pub const NFTA_SET_DESC_SIZE: u16 = 1;
pub const NFT_SET_ANONYMOUS: u32 = 0x1;
pub const NFT_SET_CONSTANT: u32 = 0x2;
pub const NFT_SET_MAP: u32 = 0x8;
pub const NFT_DATA_VERDICT: u32 = 0xffff_ff00;
pub const NFTA_SET_ELEM_DATA: u16 = 2;

// data / verdicts
pub const NFTA_DATA_VERDICT: u16 = 2;
pub const NFTA_VERDICT_CODE: u16 = 1;
pub const NFTA_VERDICT_CHAIN: u16 = 2;
pub const NF_DROP: u32 = 0;
pub const NFT_JUMP: u32 = -3i32 as u32;

// expressions
pub const NFT_REG_VERDICT: u32 = 0;
pub const NFT_REG_2: u32 = 2;
/// NFT_REG32_01: the second 32-bit register (after a 4-byte value in reg 1).
pub const NFT_REG32_01: u32 = 9;
pub const NFTA_IMMEDIATE_DREG: u16 = 1;
pub const NFTA_IMMEDIATE_DATA: u16 = 2;
pub const NFTA_LOOKUP_DREG: u16 = 3;
pub const NFT_META_L4PROTO: u32 = 16;
pub const NFTA_CT_DREG: u16 = 1;
pub const NFTA_CT_KEY: u16 = 2;
pub const NFT_CT_STATE: u32 = 0;
pub const NFTA_BITWISE_SREG: u16 = 1;
pub const NFTA_BITWISE_DREG: u16 = 2;
pub const NFTA_BITWISE_LEN: u16 = 3;
pub const NFTA_BITWISE_MASK: u16 = 4;
pub const NFTA_BITWISE_XOR: u16 = 5;
pub const NFT_CMP_NEQ: u32 = 1;
pub const NFT_CMP_LTE: u32 = 3;
pub const NFT_CMP_GTE: u32 = 5;
pub const NFTA_FIB_DREG: u16 = 1;
pub const NFTA_FIB_RESULT: u16 = 2;
pub const NFTA_FIB_FLAGS: u16 = 3;
pub const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
pub const NFTA_FIB_F_SADDR: u32 = 1;
pub const RTN_LOCAL: u32 = 2;
pub const NFTA_OBJREF_IMM_TYPE: u16 = 1;
pub const NFTA_OBJREF_IMM_NAME: u16 = 2;
pub const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
/// `ct state established,related`: IP_CT_ESTABLISHED (bit 1) | IP_CT_RELATED (bit 2).
pub const CT_STATE_ESTABLISHED_RELATED: u32 = 0x2 | 0x4;

// limit and log (`limit rate N/second burst B packets log prefix ".." group G`)
pub const NFTA_LIMIT_RATE: u16 = 1;
pub const NFTA_LIMIT_UNIT: u16 = 2;
pub const NFTA_LIMIT_BURST: u16 = 3;
pub const NFTA_LIMIT_TYPE: u16 = 4;
pub const NFTA_LIMIT_FLAGS: u16 = 5;
pub const NFT_LIMIT_PKTS: u32 = 0;
pub const NFTA_LOG_GROUP: u16 = 1;
pub const NFTA_LOG_PREFIX: u16 = 2;

// nft datatypes (src/datatype.h) and concatenations of them
pub const NFT_TYPE_INET_SERVICE: u32 = 13;
pub const NFT_TYPE_BITS: u32 = 6;

// libnftnl set userdata types
pub const NFTNL_UDATA_SET_DATABYTEORDER: u8 = 1;
pub const NFTNL_UDATA_SET_MERGE_ELEMENTS: u8 = 2;
pub const NFTNL_UDATA_SET_KEY_TYPEOF: u8 = 3;
pub const NFTNL_UDATA_SET_DATA_INTERVAL: u8 = 6;
/// The comment TLV type in rule and chain userdata.
pub const NFTNL_UDATA_COMMENT: u8 = 0;
/// nft's `enum byteorder`: host order (concatenations are marked so).
pub const BYTEORDER_INVALID: u32 = 0;

// IP protocol numbers and nft's protocol descriptions (proto.h) for the
// typeof userdata of anonymous port sets.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_SCTP: u8 = 132;
pub const PROTO_DESC_UDP: u32 = 6;
pub const PROTO_DESC_TCP: u32 = 8;
pub const PROTO_DESC_SCTP: u32 = 10;
