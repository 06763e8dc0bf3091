"""tickwork: durable scheduled triggers for AI agents."""
