use unicode_normalization::UnicodeNormalization;

use crate::error::AppError;

/// Trims, NFC-normalises and checks the length (in characters) of user text.
fn bounded(field: &str, raw: &str, min: usize, max: usize) -> Result<String, AppError> {
    let value: String = raw.trim().nfc().collect();
    let len = value.chars().count();
    if len < min {
        return Err(AppError::bad_input(if min == 1 {
            format!("{field} must not be empty")
        } else {
            format!("{field} must be at least {min} characters")
        }));
    }
    if len > max {
        return Err(AppError::bad_input(format!(
            "{field} must be at most {max} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(AppError::bad_input(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value)
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MAX: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, AppError> {
                bounded($field, raw, $min, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }
    };
}

text_type!(
    /// A display name: 1–80 characters.
    UserName, "name", 1, 80
);
text_type!(
    /// A todo title: 1–200 characters.
    Title, "title", 1, 200
);
text_type!(
    /// A chat message: 1–4,000 characters.
    MessageBody, "body", 1, 4000
);
text_type!(
    /// A study subject: 1–80 characters.
    Subject, "subject", 1, 80
);
text_type!(
    /// A chat room name: 1–80 characters.
    RoomName, "room name", 1, 80
);

/// An email address, stored lower-cased so uniqueness is case-insensitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let value = raw.trim().to_lowercase();
        let invalid = || AppError::bad_input("email is not a valid address");
        if value.is_empty() || value.len() > Self::MAX {
            return Err(invalid());
        }
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(Self(value))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password in clear, held only long enough to hash or verify it.
/// `Debug` is redacted so it cannot reach a log by accident.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let len = raw.chars().count();
        if len < Self::MIN {
            return Err(AppError::bad_input(format!(
                "password must be at least {} characters",
                Self::MIN
            )));
        }
        if len > Self::MAX {
            return Err(AppError::bad_input(format!(
                "password must be at most {} characters",
                Self::MAX
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            Email::parse(" Ann@Example.ORG ").unwrap().as_str(),
            "ann@example.org"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.org",
            "ann@x",
            "a b@x.org",
            "ann@x..org",
            "ann@-x.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn text_is_trimmed_normalised_and_bounded() {
        assert_eq!(Title::parse("  read  ").unwrap().as_str(), "read");
        assert!(Title::parse("   ").is_err());
        assert!(Title::parse(&"x".repeat(201)).is_err());
        assert!(Title::parse(&"é".repeat(200)).is_ok());
        assert_eq!(UserName::parse("e\u{301}").unwrap().as_str(), "é");
        assert!(MessageBody::parse("bell\u{7}").is_err());
    }

    #[test]
    fn passwords_have_a_minimum_and_never_debug_print() {
        assert!(Password::parse("short").is_err());
        let password = Password::parse("long enough").unwrap();
        assert!(!format!("{password:?}").contains("long"));
    }
}
