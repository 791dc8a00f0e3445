//! Tracing set-up: human-readable lines by default, JSON on request, always on stderr so
//! stdout stays for results and bound addresses.

use tracing_subscriber::EnvFilter;

use crate::cli::{LogFormat, LogOptions};

/// Installs the global subscriber.
pub(crate) fn init(options: &LogOptions) {
    let filter = EnvFilter::try_new(&options.log).unwrap_or_else(|error| {
        eprintln!(
            "warning: --log {:?} is not a filter ({error}); using info",
            options.log
        );
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match options.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
