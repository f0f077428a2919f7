//! The shipped chat rules on messages they were not written against: scam
//! messages in obfuscations and phrasings the simulator does not produce,
//! and honest messages that look a little like them. The messages were
//! written after the rules and the rules were not changed to fit them, so
//! the figures say how the rules generalise; the floors sit at the first
//! run's figures, so a change that loses ground fails here.

use gavel_engine::Engine;
use gavel_model::pb::ChatMessageSent;
use gavel_model::pb::event::Payload;
use gavel_model::{Event, timestamp_from_ms};

const SCAMS: &[&str] = &[
    "Ｐａｙｐａｌ ｍｅ ｄｉｒｅｃｔｌｙ, ｎｏ ｆｅｅｓ",
    "zеllе only, i'll send you the tracking",
    "W.h.a.t.s.A.p.p +44 7911 123456 for pics",
    "add me on telegram @cardshark99 cheaper there",
    "message me on ＷＨＡＴＳＡＰＰ",
    "send 💵 via c a s h a p p and I'll ship now",
    "dont pay thru the app, hit me up on snap",
    "nine one seven, eight eight two, four four six one — text for deals",
    "venmo @jake-cards and i'll mark it sold",
    "cheaper on my site: cardz-outlet dot shop",
    "Z E L L E me the $$ and it ships today",
    "pay via crypto (USDT) for 10% off",
    "𝓿𝓮𝓷𝓶𝓸 me for a better deal",
    "c-a-s-h-a-p-p only, dm me",
    "pls send money on p4yp4l f&f",
];

const HONEST: &[&str] = &[
    "I paid with paypal last time, worked fine",
    "my cousin uses venmo for everything lol",
    "can someone text me when the next show starts? jk",
    "the real price of this on ebay is like 200",
    "call me crazy but I love this set",
    "order #55512345678 hasn't shipped",
    "whatsapp group for collectors is full, sad",
    "first edition, 1999, 2000 print run",
    "Is shipping cheaper if I buy two?",
    "friends and family bought me this set for my birthday",
    "grading costs 25 30 40 50 60 depending on tier",
    "no fees on this app is the best part",
    "my zelle limit is too low to buy anything big, sad",
    "dm me your want list and I'll look out at the next show",
    "Ω rare holo, ébène border, ｆｕｌｌ art",
];

/// How many of `messages` the shipped pack flags, each from its own user
/// in its own show a minute apart (so no velocity feature adds up).
fn flagged(engine: &Engine, messages: &[&str], tag: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, text) in messages.iter().enumerate() {
        let t = 1_767_225_600_000 + i as i64 * 60_000;
        let event = Event {
            event_id: format!("{tag}-{i}"),
            occurred_at: Some(timestamp_from_ms(t)),
            user_id: format!("{tag}-user-{i}"),
            payload: Some(Payload::ChatMessageSent(ChatMessageSent {
                message_id: format!("{tag}-m{i}"),
                show_id: format!("{tag}-show-{i}"),
                text: (*text).into(),
            })),
            ..Default::default()
        };
        let outcome = engine.evaluate(&event, None, t).unwrap();
        if outcome.publishes_signal() {
            out.push((*text).to_string());
        }
    }
    out
}

#[test]
fn chat_rules_generalise_to_messages_they_were_not_written_against() {
    let engine = Engine::new(gavel::tools::pack::shipped().unwrap());
    let caught = flagged(&engine, SCAMS, "scam");
    let false_alarms = flagged(&engine, HONEST, "honest");
    let missed: Vec<&&str> = SCAMS.iter().filter(|s| !caught.iter().any(|c| c == **s)).collect();
    let report = format!(
        "caught {} of {} held-out scams (missed: {missed:?}); flagged {} of {} honest look-alikes ({false_alarms:?})",
        caught.len(),
        SCAMS.len(),
        false_alarms.len(),
        HONEST.len()
    );
    println!("{report}");
    assert!(caught.len() >= FLOOR_CAUGHT, "{report}");
    assert!(false_alarms.len() <= CEILING_FALSE_ALARMS, "{report}");
}

/// The first run caught 10 of 15: it missed an app named with an
/// instruction the lists do not have ("send via", "pay via", "only") and an
/// app they do not name ("snap").
const FLOOR_CAUGHT: usize = 10;
/// The first run flagged 2 of 15, both as phone numbers: an 11-digit order
/// number and a list of prices written apart. Pack 2026.12.05-1 stopped
/// reading a number after "order #" as a phone number, a change this
/// miss prompted, so the order number no longer counts as held out; the
/// list of prices is still flagged.
const CEILING_FALSE_ALARMS: usize = 1;
