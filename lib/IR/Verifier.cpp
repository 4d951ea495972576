// Placeholder so the build configures; its owner replaces it.
