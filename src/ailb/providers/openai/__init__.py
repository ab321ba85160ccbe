"""OpenAI and OpenAI-compatible upstreams."""
