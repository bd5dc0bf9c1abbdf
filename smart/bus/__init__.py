"""The bus pillar: NATS JetStream conventions shared by the hub and the stations.

Stations never write to the hub's buckets directly and never read them over
the leaf at decision time: they mirror each bucket into their own JetStream
domain and read the mirror, so a station keeps working with every hub down.
"""
