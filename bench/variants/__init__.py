"""Counterfactual versions of Switchboard: what each cold-start technique saves, measured."""
