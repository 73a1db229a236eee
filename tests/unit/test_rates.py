from controller.rates import PortRateTracker, PortSample, rate_between


def sample(rx=0, tx=0, duration=0.0, rxp=0, txp=0, dropped=0):
    return PortSample(rx, tx, rxp, txp, dropped, duration)


def test_rate_uses_counter_durations_not_arrival_time():
    rate, unused = rate_between(sample(tx=1_000, duration=10.0), sample(tx=126_000, duration=12.0))
    assert rate.tx_bps == 500_000  # 125 kB in 2 s of the port's own clock
    assert rate.interval == 2.0 and unused == 0


def test_from_counters_combines_seconds_and_nanoseconds():
    s = PortSample.from_counters(1, 2, 3, 4, 5, duration_sec=7, duration_nsec=250_000_000)
    assert s.duration == 7.25


def test_counter_reset_restarts_series():
    assert rate_between(sample(tx=5000, duration=9.0), sample(tx=100, duration=1.0)) == (None, 0)
    assert rate_between(sample(duration=3.0), sample(duration=3.0)) == (None, 0)


def test_tracker_first_sample_has_no_rate_then_rates():
    tracker = PortRateTracker()
    assert tracker.update(1, 2, sample(rx=0, duration=1.0)) is None
    rate = tracker.update(1, 2, sample(rx=250_000, rxp=200, duration=2.0))
    assert rate.rx_bps == 2_000_000 and rate.rx_pps == 200


def test_probe_bytes_are_discounted_and_carried_over():
    tracker = PortRateTracker()
    tracker.update(1, 1, sample(tx=0, duration=0.0))
    tracker.discount_tx(1, 1, 300_000)
    # Only 200 kB of the 300 kB train left in this interval, plus nothing else.
    assert tracker.update(1, 1, sample(tx=200_000, duration=1.0)).tx_bps == 0
    # The remaining 100 kB of the train and 50 kB of user traffic in the next one.
    assert tracker.update(1, 1, sample(tx=350_000, duration=2.0)).tx_bps == 50_000 * 8
    assert tracker.update(1, 1, sample(tx=400_000, duration=3.0)).tx_bps == 50_000 * 8


def test_forget_drops_switch_series():
    tracker = PortRateTracker()
    tracker.update(7, 1, sample(duration=1.0))
    tracker.forget(7)
    assert tracker.update(7, 1, sample(tx=10, duration=2.0)) is None
