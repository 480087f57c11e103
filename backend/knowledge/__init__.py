"""The knowledge base (versioned articles, ranked search) and guided call scripts."""
