//! Member addresses as they are written in flags and registrations.

/// `host:port` or `[v6]:port`, with a non-zero port and a host free of spaces and slashes.
pub fn is_host_port(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|port| port != 0);
    let host_ok =
        !host.is_empty() && !host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@');
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(is_host_port("127.0.0.1:7700"));
        assert!(is_host_port("scraper-1.internal:80"));
        assert!(is_host_port("[::1]:7700"));
        assert!(!is_host_port("127.0.0.1"));
        assert!(!is_host_port("127.0.0.1:0"));
        assert!(!is_host_port("http://127.0.0.1:80"));
        assert!(!is_host_port(":80"));
        assert!(!is_host_port("host:port"));
    }
}
