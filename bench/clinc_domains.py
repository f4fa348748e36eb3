#!/usr/bin/env python3
"""One-domain out-of-scope sets for seven more CLINC150 domains, built the way
clinc-banking-oos and clinc-credit-oos are: 10 intents of a domain are the
bot's (50 training examples each, no out-of-scope rows), its 5 other intents
are questions close to the bot's subject that it was never taught, and
CLINC150's own out-of-scope rows are questions about anything else.

A change to the triage model must hold on bots it was not tuned on; these
seven, with the two shipped sets, say whether it does. Usage:
    bench/clinc_domains.py DATA OUTDIR
writes OUTDIR/DOMAIN.train.jsonl and OUTDIR/DOMAIN.test.jsonl (test: the
test and first 20 validation rows of each intent, 500 in scope, 250 in the
domain but out of scope, 250 general: half out of scope). Which intents are
held out is drawn with a fixed seed per domain."""
import collections
import json
import os
import random
import sys

# CLINC150's domains (Larson et al. 2019), but banking and credit cards (the
# shipped sets) and meta.
DOMAINS = {
    "kitchen": "recipe restaurant_reviews calories nutrition_info restaurant_suggestion "
    "ingredients_list ingredient_substitution cook_time food_last meal_suggestion "
    "restaurant_reservation confirm_reservation how_busy cancel_reservation "
    "accept_reservations",
    "home": "shopping_list shopping_list_update next_song play_music update_playlist todo_list "
    "todo_list_update calendar calendar_update what_song order order_status reminder "
    "reminder_update smart_home",
    "auto": "traffic directions gas gas_type distance current_location mpg oil_change_when "
    "oil_change_how jump_start uber schedule_maintenance last_maintenance tire_pressure "
    "tire_change",
    "travel": "book_flight book_hotel car_rental travel_suggestion travel_alert "
    "travel_notification carry_on timezone vaccines translate flight_status "
    "international_visa lost_luggage plug_type exchange_rate",
    "utility": "time alarm share_location find_phone weather text spelling make_call timer date "
    "calculator measurement_conversion flip_coin roll_dice definition",
    "work": "direct_deposit pto_request taxes payday w2 pto_balance pto_request_status "
    "next_holiday insurance insurance_change schedule_meeting pto_used meeting_schedule "
    "rollover_401k income",
    "smalltalk": "greeting goodbye tell_joke where_are_you_from how_old_are_you "
    "what_is_your_name who_made_you thank_you what_can_i_ask_you what_are_your_hobbies "
    "do_you_have_pets are_you_a_bot meaning_of_life who_do_you_work_for fun_fact",
}


def load(path):
    rows = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            rows[r["intent"]].append(r["text"])
    return rows


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    train = load(os.path.join(data, "clinc150", "train.jsonl"))
    test = load(os.path.join(data, "clinc150", "test.jsonl"))
    val = load(os.path.join(data, "clinc150", "val.jsonl"))
    for name, intents in DOMAINS.items():
        intents = intents.split()
        rng = random.Random(name)
        rng.shuffle(intents)
        bot, held = intents[:10], intents[10:]
        with open(os.path.join(out, name + ".train.jsonl"), "w") as f:
            for i in bot:
                for t in rng.sample(train[i], 50):
                    f.write(json.dumps({"text": t, "intent": i}) + "\n")
        rows = [(t, i) for i in bot for t in test[i] + val[i][:20]]
        rows += [(t, "oos") for i in held for t in test[i] + val[i][:20]]
        rows += [(t, "oos") for t in rng.sample(test["oos"] + val["oos"], 250)]
        with open(os.path.join(out, name + ".test.jsonl"), "w") as f:
            for t, i in rows:
                f.write(json.dumps({"text": t, "intent": i}) + "\n")


if __name__ == "__main__":
    main()
