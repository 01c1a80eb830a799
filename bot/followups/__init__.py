"""The template follow-up after a closure ("we're back, how can we help?"): who gets it
(`rule`, pure) and the scheduler leader's job that queues it (`job`)."""
