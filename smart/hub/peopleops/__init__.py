"""PeopleOps (Vault hub): employment records and the onboarding checklist per station."""
