//! Firehose's value constraints, written out by hand (no regex engine on the request path).

/// Stream names: `[a-zA-Z0-9_.-]{1,64}`, and never `.` or `..` (the name is a directory).
#[must_use]
pub fn stream_name_ok(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && name != "."
        && name != ".."
}

/// Tag keys: 1 to 128 characters of letters, separators, numbers and `_.:/=+-@%`, not starting
/// with `aws:` (`^(?!aws:)[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$`).
#[must_use]
pub fn tag_key_ok(key: &str) -> bool {
    let n = key.chars().count();
    (1..=128).contains(&n) && !key.starts_with("aws:") && key.chars().all(tag_char_ok)
}

/// Tag values: 0 to 256 characters from the same set as keys.
#[must_use]
pub fn tag_value_ok(value: &str) -> bool {
    value.chars().count() <= 256 && value.chars().all(tag_char_ok)
}

fn tag_char_ok(c: char) -> bool {
    c.is_alphanumeric()
        || c == ' '
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@' | '%')
}

/// `arn:.*:s3:::[\w\.\-]{1,255}`, 1 to 2048 characters.
#[must_use]
pub fn bucket_arn_ok(arn: &str) -> bool {
    if arn.is_empty() || arn.len() > 2048 || !arn.starts_with("arn:") {
        return false;
    }
    let Some(pos) = arn.find(":s3:::") else {
        return false;
    };
    let bucket = &arn[pos + ":s3:::".len()..];
    (1..=255).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `arn:.*:iam::\d{12}:role/[a-zA-Z_0-9+=,.@\-_/]+`, 1 to 512 characters.
#[must_use]
pub fn role_arn_ok(arn: &str) -> bool {
    if arn.is_empty() || arn.len() > 512 || !arn.starts_with("arn:") {
        return false;
    }
    let Some(pos) = arn.find(":iam::") else {
        return false;
    };
    let rest = &arn[pos + ":iam::".len()..];
    let (account, role) = match rest.split_once(":role/") {
        Some(x) => x,
        None => return false,
    };
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !role.is_empty()
        && role.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'_' | b'+' | b'=' | b',' | b'.' | b'@' | b'-' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(stream_name_ok("a"));
        assert!(stream_name_ok("My_stream-1.x"));
        assert!(stream_name_ok(&"a".repeat(64)));
        assert!(!stream_name_ok(&"a".repeat(65)));
        assert!(!stream_name_ok(""));
        assert!(!stream_name_ok(".."));
        assert!(!stream_name_ok("."));
        assert!(!stream_name_ok("a/b"));
        assert!(!stream_name_ok("a b"));
        assert!(!stream_name_ok("é"));
    }

    #[test]
    fn tags_and_arns() {
        assert!(tag_key_ok("team"));
        assert!(tag_key_ok("a b:c/d=e+f-g@h%"));
        assert!(!tag_key_ok("aws:x"));
        assert!(!tag_key_ok(""));
        assert!(!tag_key_ok("a*b"));
        assert!(tag_value_ok(""));
        assert!(!tag_value_ok(&"v".repeat(257)));
        assert!(bucket_arn_ok("arn:aws:s3:::my-bucket.x"));
        assert!(!bucket_arn_ok("arn:aws:s3:::"));
        assert!(!bucket_arn_ok("my-bucket"));
        assert!(role_arn_ok("arn:aws:iam::123456789012:role/firehose_role"));
        assert!(!role_arn_ok("arn:aws:iam::12345:role/x"));
    }
}
