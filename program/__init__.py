"""The program layer: the Pulumi program's entry point (`deploy`, with the interop preflight) and the offline runner
that evaluates it under Pulumi's mocks for `paictl plan`, the air-gap bill of materials and the tests."""
