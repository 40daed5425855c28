//! Which addresses a request may reach: host names written as numbers made plain, and the
//! ranges refused unless the grant names them (loopback, private, link-local, ...).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// `host` as an IP address if it is one in any form a resolver accepts: dotted decimal,
/// the shortened and numeric IPv4 forms (`127.1`, `2130706433`, `0x7f.0.0.1`, `0177.1`),
/// or IPv6 (bracketed or not). IPv4-mapped IPv6 addresses are given as IPv4.
pub fn parse_numeric_host(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(v6) = bare.parse::<Ipv6Addr>() {
        return Some(match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        });
    }
    parse_inet_aton(host).map(IpAddr::V4)
}

/// IPv4 as `inet_aton` reads it: one to four parts, each decimal, octal (leading `0`) or
/// hexadecimal (`0x`), the last filling the bytes left. (This decides how rules match; what
/// a request may reach is decided on the addresses a lookup returns, so a form read here
/// as a name that a resolver reads as an address is still checked.)
fn parse_inet_aton(host: &str) -> Option<Ipv4Addr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        numbers.push(parse_part(part)?);
    }
    let (last, leading) = numbers.split_last()?;
    let mut value: u64 = 0;
    for (i, n) in leading.iter().enumerate() {
        if *n > 0xff {
            return None;
        }
        value |= n << (24 - 8 * i);
    }
    let room = 32 - 8 * leading.len() as u32;
    if *last >= 1u64 << room {
        return None;
    }
    Some(Ipv4Addr::from((value | last) as u32))
}

/// One part of an `inet_aton` address.
fn parse_part(part: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|n| *n <= u32::MAX as u64)
}

/// Why `ip` is refused unless the grant names it, if it is: the special-purpose ranges a
/// request from a sandbox must not reach by default.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "a cloud metadata address",
        (0, _) => "an unspecified address",
        (127, _) => "a loopback address",
        (10, _) | (172, 16..=31) | (192, 168) => "a private address",
        (169, 254) => "a link-local address",
        (100, 64..=127) => "a carrier-grade NAT address",
        (224..=239, _) => "a multicast address",
        _ if ip.is_broadcast() => "the broadcast address",
        (240..=255, _) => "a reserved address",
        (192, 0) if c == 0 => "an IETF protocol address",
        (192, 0) if c == 2 => "a documentation address",
        (198, 51) if c == 100 => "a documentation address",
        (203, 0) if c == 113 => "a documentation address",
        (198, 18..=19) => "a benchmarking address",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return special_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address that decides.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return special_v4(Ipv4Addr::new(a, b, c, d));
    }
    if segments[0] == 0x2002 {
        let [a, b] = segments[1].to_be_bytes();
        let [c, d] = segments[2].to_be_bytes();
        return special_v4(Ipv4Addr::new(a, b, c, d)).or(Some("a 6to4 address"));
    }
    Some(match segments[0] {
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        _ if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => "a cloud metadata address",
        0 => "a reserved address",
        0x100 if segments[1..4] == [0, 0, 0] => "a discard address",
        s if s & 0xfe00 == 0xfc00 => "a private address",
        s if s & 0xffc0 == 0xfe80 => "a link-local address",
        s if s & 0xffc0 == 0xfec0 => "a site-local address",
        s if s & 0xff00 == 0xff00 => "a multicast address",
        0x2001 if segments[1] == 0xdb8 => "a documentation address",
        _ => return None,
    })
}

/// A range of addresses the grant lets requests reach although they are special (loopback,
/// private, link-local, ...) and refused otherwise: `127.0.0.1`, `10.0.0.0/8`, `::1`,
/// `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl AddressRange {
    /// Whether `ip` is in this range (IPv4-mapped IPv6 addresses as their IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Why an address range did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address or a range (ADDRESS or ADDRESS/PREFIX, e.g. 10.0.0.0/8)")]
pub struct AddressRangeError(pub String);

impl FromStr for AddressRange {
    type Err = AddressRangeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || AddressRangeError(text.to_string());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = address
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map_err(|_| error())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(error)?,
            None => bits,
        };
        Ok(AddressRange { network, prefix })
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn numeric_forms_are_made_plain() {
        for form in [
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f000001",
            "0x7f.1",
            "0177.0.0.1",
            "0x7F.0.0.0x1",
            "127.0.0.1.",
            "[::ffff:127.0.0.1]",
            "::ffff:7f00:1",
        ] {
            assert_eq!(parse_numeric_host(form), Some(ip("127.0.0.1")), "{form}");
        }
        assert_eq!(parse_numeric_host("[::1]"), Some(ip("::1")));
        for name in [
            "example.com",
            "1.2.3.4.5",
            "256.1.1.1",
            "0x",
            "08.1",
            "1.2.3.256",
            "",
        ] {
            assert_eq!(parse_numeric_host(name), None, "{name}");
        }
        assert_eq!(parse_numeric_host("1.2.65535"), Some(ip("1.2.255.255")));
    }

    #[test]
    fn special_ranges_are_named() {
        for (address, why) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.31.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:10.0.0.1", "private"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:7f00:1::", "loopback"),
            ("fd12::1", "private"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("fd00:ec2::254", "metadata"),
        ] {
            let found = special_range(ip(address)).unwrap_or("none");
            assert!(found.contains(why), "{address}: {found}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111"] {
            assert_eq!(special_range(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn ranges_parse_and_match() {
        let loopback: AddressRange = "127.0.0.0/8".parse().unwrap();
        assert!(loopback.contains(ip("127.9.9.9")));
        assert!(loopback.contains(ip("::ffff:127.0.0.1")));
        assert!(!loopback.contains(ip("128.0.0.1")));
        let one: AddressRange = "::1".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        let all: AddressRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("10.0.0.1")));
        for bad in ["10.0.0.0/33", "example.com", "1.2.3.4/x", ""] {
            assert!(bad.parse::<AddressRange>().is_err(), "{bad}");
        }
    }
}
