"""The GPU side of dreamqueue: request types, the diffusers pipeline, the engine process and its client."""
