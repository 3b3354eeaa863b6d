//! Placeholder: the SDK is built in issue 4.
