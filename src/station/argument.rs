//! An argument an operation refuses, named: the one shape every station error carries for it
//! (a CLI flag, a console form field, an API request field), shown as `field: why` and mapped
//! to the usage exit code.

/// An argument is not acceptable: which one, and why.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidArgument {
    /// The argument, as the front names it.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::InvalidArgument;

    #[test]
    fn names_the_argument_before_the_reason() {
        let e = InvalidArgument {
            field: "--reason",
            message: "must not be empty".into(),
        };
        assert_eq!(e.to_string(), "--reason: must not be empty");
    }
}
