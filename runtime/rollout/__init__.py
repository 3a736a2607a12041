"""The workstation side of getting bundles onto boards: rollout over ssh (with the board's
`edgewatch activate` at the other end, runtime/activation.py) and conversion jobs run by the build
host's `edgewatch-convert@.service`. Nothing here runs on a board."""
