"""Push notifications: the daily alert's counts, also on the devices a citizen allowed (Web Push,
RFC 8030 with the encryption of RFC 8291 and VAPID of RFC 8292). Decision 0024."""
