//! A small MaxMind DB writer for the tests' own IP databases (IPv4, 32-bit records), after the
//! format's published specification: a binary search tree over the address bits, 16 zero bytes,
//! the data section, then the metadata map after `\xAB\xCD\xEFMaxMind.com`.

use serde_json::Value;

/// A control byte (and its extended-type and size bytes) of the data section.
fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    {
        let (low, extra): (u8, Vec<u8>) = match size {
            0..=28 => (size as u8, vec![]),
            29..=284 => (29, vec![(size - 29) as u8]),
            285..=65_820 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
            _ => (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec()),
        };
        if kind <= 7 {
            out.push((kind << 5) | low);
        } else {
            out.push(low);
            out.push(kind - 7);
        }
        out.extend_from_slice(&extra);
    }
}

/// An unsigned integer of type `kind` (5: uint16, 6: uint32, 9: uint64), big-endian, without
/// leading zero bytes.
fn uint(out: &mut Vec<u8>, kind: u8, n: u64) {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, kind, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

/// Encodes one value of the data section (strings, unsigned integers as uint32, maps, arrays).
fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::String(text) => {
            control(out, 2, text.len());
            out.extend_from_slice(text.as_bytes());
        }
        Value::Number(n) => uint(out, 6, n.as_u64().expect("unsigned integers only")),
        Value::Object(map) => {
            control(out, 7, map.len());
            for (key, value) in map {
                encode(&Value::String(key.clone()), out);
                encode(value, out);
            }
        }
        Value::Array(items) => {
            control(out, 11, items.len());
            for item in items {
                encode(item, out);
            }
        }
        Value::Bool(b) => control(out, 14, usize::from(*b)),
        Value::Null => panic!("no null in MaxMind DB"),
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Empty,
    Node(usize),
    Data(usize),
}

/// Builds a database mapping each IPv4 network (`a.b.c.d/len`) to its record.
pub fn build(entries: &[(&str, Value)]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut nodes: Vec<[Slot; 2]> = vec![[Slot::Empty; 2]];
    for (network, record) in entries {
        let (addr, len) = network.split_once('/').expect("a.b.c.d/len");
        let addr: std::net::Ipv4Addr = addr.parse().unwrap();
        let len: usize = len.parse().unwrap();
        let offset = data.len();
        encode(record, &mut data);
        let bits = u32::from(addr);
        let mut node = 0;
        for i in 0..len {
            let bit = ((bits >> (31 - i)) & 1) as usize;
            if i + 1 == len {
                nodes[node][bit] = Slot::Data(offset);
                break;
            }
            node = match nodes[node][bit] {
                Slot::Node(next) => next,
                _ => {
                    nodes.push([Slot::Empty; 2]);
                    let next = nodes.len() - 1;
                    nodes[node][bit] = Slot::Node(next);
                    next
                }
            };
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for slot in node {
            let value = match *slot {
                Slot::Empty => count,
                Slot::Node(next) => next,
                Slot::Data(offset) => count + 16 + offset,
            };
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    // The metadata's integers have the types the format names for each key.
    let key = |out: &mut Vec<u8>, name: &str| encode(&Value::String(name.to_owned()), out);
    control(&mut out, 7, 9);
    key(&mut out, "node_count");
    uint(&mut out, 6, count as u64);
    key(&mut out, "record_size");
    uint(&mut out, 5, 32);
    key(&mut out, "ip_version");
    uint(&mut out, 5, 4);
    key(&mut out, "database_type");
    encode(&Value::String("panlink-test-City".into()), &mut out);
    key(&mut out, "languages");
    encode(&serde_json::json!(["en", "zh-CN"]), &mut out);
    key(&mut out, "binary_format_major_version");
    uint(&mut out, 5, 2);
    key(&mut out, "binary_format_minor_version");
    uint(&mut out, 5, 0);
    key(&mut out, "build_epoch");
    uint(&mut out, 9, 1_790_000_000);
    key(&mut out, "description");
    encode(
        &serde_json::json!({"en": "panlink test database"}),
        &mut out,
    );
    out
}
