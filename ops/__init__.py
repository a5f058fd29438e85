"""Operations tooling: throwaway servers (PostgreSQL, Redis) on loopback and the
many-instance cluster behind HAProxy (`python -m ops.cluster`, `make cluster`). The
tests start their servers through the same starters, so there is one way to do it."""
