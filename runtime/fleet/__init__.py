"""Getting bundles onto boards: the board side (`activate`) and the workstation side (rollout over ssh)."""
