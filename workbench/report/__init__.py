"""What reads run and sweep folders: results tables, paired intervals, hypotheses, figures. Never trains."""
