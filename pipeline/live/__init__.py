"""The live worker: one warm process that keeps the marts and exports fresh within seconds."""
