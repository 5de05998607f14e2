//! Sources: the adapters that turn a monitoring tool's payload into alerts.
