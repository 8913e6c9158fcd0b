"""bmsdk's benchmarks: the real demo models (`zoo`), latency measurement (`timing`) and the demo pipeline (`demo`)."""
