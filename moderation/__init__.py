"""Terms-of-service checks for prompts, personal-information detection, and the flag store."""
