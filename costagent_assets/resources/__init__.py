"""One ConfigurableResource per outside system; the only modules that import their clients."""
