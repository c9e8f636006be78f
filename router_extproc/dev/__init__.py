"""Development tools, never on the request path: the demo upstreams and the `Stack` that tests and benchmarks run
(Envoy + router + demo upstreams on free ports). The runtime modules do not import this package."""
