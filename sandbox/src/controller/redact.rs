//! Secrets kept out of the logs: every line the controller logs goes through [`redact`].

/// What a redacted value becomes.
pub const REDACTED: &str = "<redacted>";

/// `text` with every PEM private key block and the value of every `name=value`, `name: value`
/// or `"name": "value"` whose name says key, secret or password replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    redact_values(&redact_pem(text))
}

fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["key", "secret", "password"].iter().any(|w| n.contains(w))
}

/// Replaces `-----BEGIN … PRIVATE KEY-----` … `-----END … PRIVATE KEY-----` (to the end of the
/// text when the end marker is missing).
fn redact_pem(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        if !label.contains("PRIVATE KEY") {
            out.push_str(&rest[..start + 11]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..start]);
        out.push_str(REDACTED);
        let end_marker = format!("-----END {label}-----");
        rest = match after.find(&end_marker) {
            Some(e) => &after[e + end_marker.len()..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Replaces the values of secret-named keys.
fn redact_values(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        i += 1;
        if c != '=' && c != ':' {
            continue;
        }
        // The name just before the separator, maybe inside quotes.
        let mut j = i - 1;
        if j > 0 && matches!(chars[j - 1], '"' | '\'') {
            j -= 1;
        }
        let end = j;
        while j > 0 && name_char(chars[j - 1]) {
            j -= 1;
        }
        let name: String = chars[j..end].iter().collect();
        if name.is_empty() || !secret_name(&name) {
            continue;
        }
        let mut k = i;
        if c == ':' {
            while k < chars.len() && chars[k] == ' ' {
                k += 1;
            }
            if k == i && k < chars.len() && chars[k] != '"' && chars[k] != '\'' {
                // `a:b` is not a key and a value (a time, a URL, a unit tag).
                continue;
            }
        }
        if k >= chars.len() || chars[k].is_whitespace() {
            continue;
        }
        out.extend(&chars[i..k]);
        if matches!(chars[k], '"' | '\'') {
            let q = chars[k];
            let mut e = k + 1;
            while e < chars.len() && chars[e] != q {
                e += if chars[e] == '\\' { 2 } else { 1 };
            }
            out.push(q);
            out.push_str(REDACTED);
            if e < chars.len() {
                out.push(q);
            }
            i = e + 1;
        } else {
            let mut e = k;
            while e < chars.len() && !chars[e].is_whitespace() && !matches!(chars[e], ',' | '}') {
                e += 1;
            }
            out.push_str(REDACTED);
            i = e;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn private_keys_and_secret_named_values_are_hidden() {
        let pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\nabc\n-----END EC PRIVATE KEY-----";
        assert_eq!(
            redact(&format!("tool leader-set tls-ca-key={pem} x=1 exited 1")),
            "tool leader-set tls-ca-key=<redacted> x=1 exited 1"
        );
        assert_eq!(
            redact("key: -----BEGIN PRIVATE KEY-----\\nAAA"),
            "key: <redacted>"
        );
        assert_eq!(
            redact("relation-set client_key=abc password=hunter2 port=2379"),
            "relation-set client_key=<redacted> password=<redacted> port=2379"
        );
        assert_eq!(
            redact(r#"{"tls-client-key": "a\"b", "secret-token":"x", "cluster": "c"}"#),
            r#"{"tls-client-key": "<redacted>", "secret-token":"<redacted>", "cluster": "c"}"#
        );
        assert_eq!(
            redact("aws-secret-access-key: AKIA123"),
            "aws-secret-access-key: <redacted>"
        );
    }

    #[test]
    fn ordinary_text_is_kept() {
        for text in [
            "unit-etcd-0: 14:33:25 DEBUG ran install in 12.0 ms, cpu 4.1 ms (exit 0)",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "peer-url=https://10.0.0.1:2380 key:value keys",
            "the key is missing",
        ] {
            assert_eq!(redact(text), text);
        }
    }
}
