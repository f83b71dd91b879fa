"""A local fake Gen3 commons (fence, guppy, DRS) that the unmodified gen3 SDK talks to."""
