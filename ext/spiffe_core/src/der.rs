//! Splitting concatenated DER certificates, as the Workload API sends chains
//! and bundles (no separators, no length prefixes).

/// Splits back-to-back DER values by their outer TLV headers. Returns `None`
/// if a header is malformed or a value runs past the end.
pub fn split_concatenated(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut items = Vec::new();
    while !bytes.is_empty() {
        let len = tlv_len(bytes)?;
        items.push(&bytes[..len]);
        bytes = &bytes[len..];
    }
    Some(items)
}

/// Total length (header + content) of the DER value at the start of `bytes`.
fn tlv_len(bytes: &[u8]) -> Option<usize> {
    // A certificate is a constructed SEQUENCE with a definite length.
    if bytes.len() < 2 || bytes[0] != 0x30 {
        return None;
    }
    let first = bytes[1] as usize;
    let (header, content) = if first < 0x80 {
        (2, first)
    } else {
        let count = first & 0x7f;
        if count == 0 || count > 4 || bytes.len() < 2 + count {
            return None;
        }
        let content = bytes[2..2 + count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (2 + count, content)
    };
    let total = header.checked_add(content)?;
    (total <= bytes.len()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_short_and_long_forms() {
        let a = [0x30, 0x02, 1, 2];
        let mut b = vec![0x30, 0x81, 0x80];
        b.extend(std::iter::repeat_n(7, 0x80));
        let joined = [&a[..], &b[..]].concat();
        let parts = split_concatenated(&joined).unwrap();
        assert_eq!(parts, vec![&a[..], &b[..]]);
        assert_eq!(split_concatenated(&[]).unwrap().len(), 0);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(split_concatenated(&[0x04, 0x01, 0]).is_none());
        assert!(split_concatenated(&[0x30, 0x05, 1]).is_none());
        assert!(split_concatenated(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(split_concatenated(&[0x30]).is_none());
    }
}
