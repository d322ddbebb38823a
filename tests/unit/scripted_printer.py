"""A printer adapter that answers each poll with the next of a list of snapshots (for the agent's
workers in unit tests)."""


class ScriptedPrinter:
    def __init__(self, snaps):
        self.snaps = list(snaps)

    def poll(self):
        return self.snaps.pop(0)

    def close(self):
        pass
