from syncer.policy.load import load_policies, read_policies, select_policies
from syncer.policy.model import Authority, Offsite, Policy

__all__ = ["Authority", "Offsite", "Policy", "load_policies", "read_policies", "select_policies"]
