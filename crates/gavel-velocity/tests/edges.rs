//! Window edges as an analyst reads them: an event younger than the window
//! always counts, one exactly the window old never does, whatever the
//! aggregate and wherever the reading falls.

use gavel_velocity::{Aggregate, CountWindow, Input, Window};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

#[test]
fn an_event_9m55s_old_is_in_a_10_minute_count() {
    let w = CountWindow::new(10 * MINUTE as u64).unwrap();
    w.record("device", 9 * SECOND);
    assert_eq!(w.count("device", 9 * SECOND + 9 * MINUTE + 55 * SECOND), 1);
    assert_eq!(w.record("device", 9 * SECOND + 9 * MINUTE + 55 * SECOND).value(), 2);
}

#[test]
fn one_bid_a_second_for_661_seconds_is_600_in_10_minutes() {
    let w = CountWindow::new(10 * MINUTE as u64).unwrap();
    let mut last = 0;
    for s in 0..661 {
        last = w.record("user", s * SECOND).value();
    }
    // (60 s, 660 s]: the bids at 61 s … 660 s.
    assert_eq!(last, 600);
    assert_eq!(w.count("user", 660 * SECOND), 600);
}

#[test]
fn a_30_day_first_seen_remembers_until_the_30th_day() {
    let w = Window::new(Aggregate::FirstSeen, 30 * DAY as u64).unwrap();
    let signed_up = 12 * HOUR - 1;
    w.record("user", signed_up, Input::None).unwrap();
    assert_eq!(w.read("user", signed_up + 30 * DAY - 1), Some(signed_up as f64));
    assert_eq!(w.read("user", signed_up + 30 * DAY), None, "exactly 30 days old: out");
}

#[test]
fn since_sees_a_previous_event_6d23h_ago_in_a_7_day_window() {
    let w = Window::new(Aggregate::Since, 7 * DAY as u64).unwrap();
    let previous = 2 * HOUR + 47 * MINUTE;
    assert_eq!(w.record("card", previous, Input::None), Ok(None));
    let gap = 6 * DAY + 23 * HOUR;
    assert_eq!(w.record("card", previous + gap, Input::None), Ok(Some(gap as f64)));
}

#[test]
fn an_event_exactly_the_window_old_is_out_and_one_millisecond_younger_is_in() {
    for aggregate in Aggregate::ALL {
        let w = Window::new(aggregate, 10 * MINUTE as u64).unwrap();
        let input = match aggregate.input() {
            gavel_velocity::InputKind::None => Input::None,
            gavel_velocity::InputKind::Number => Input::Number(7.0),
            gavel_velocity::InputKind::Item => Input::Item("card"),
        };
        let t = 3 * SECOND + 17;
        w.record("k", t, input).unwrap();
        let at_edge = w.read("k", t + 10 * MINUTE - 1);
        assert_ne!(at_edge, aggregate.empty_value(), "{aggregate}: 1 ms younger than the window");
        assert_eq!(w.read("k", t + 10 * MINUTE), aggregate.empty_value(), "{aggregate}: exactly the window old");
    }
}
