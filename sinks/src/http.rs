//! The HTTP endpoint destination (HttpEndpointDestinationConfiguration): not built yet.
