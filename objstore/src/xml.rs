//! The few bits of S3's XML error documents the client reads.

/// An S3 error document's code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    /// `<Code>`, e.g. `NoSuchBucket`.
    pub code: String,
    /// `<Message>`, free text.
    pub message: String,
}

/// The `<Error>` in `body`, if it is one.
pub fn error(body: &str) -> Option<S3Error> {
    let start = body.find("<Error>")?;
    let doc = &body[start..];
    Some(S3Error {
        code: element(doc, "Code").unwrap_or_default(),
        message: element(doc, "Message").unwrap_or_default(),
    })
}

/// The text of the first `<name>` element, entities decoded.
fn element(doc: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let from = doc.find(&open)? + open.len();
    let to = from + doc[from..].find(&format!("</{name}>"))?;
    Some(unescape(doc[from..to].trim()))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_code_and_message() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>Bucket not found: a &amp; b</Message>
<Resource>/b</Resource><Region>garage</Region></Error>"#;
        assert_eq!(
            error(body),
            Some(S3Error {
                code: "NoSuchBucket".into(),
                message: "Bucket not found: a & b".into()
            })
        );
    }

    #[test]
    fn other_documents_are_not_errors() {
        assert_eq!(error("<ListBucketResult></ListBucketResult>"), None);
        assert_eq!(error(""), None);
        let e = error("<Error><Code>X</Code></Error>").unwrap();
        assert_eq!((e.code.as_str(), e.message.as_str()), ("X", ""));
    }
}
