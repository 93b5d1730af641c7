"""The Discord side of dreamqueue: settings, database, scheduler, cogs and the command line."""
