"""Fair scheduling, quotas and the job journal: plain asyncio, no discord import."""
