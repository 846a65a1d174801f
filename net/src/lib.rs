//! The wire of Sluice: the Kafka protocol adapters, the native protocol, framing, the connection loop and the native client.
