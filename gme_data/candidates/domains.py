"""GME's 15 candidate domains, each described by a few label prompts for zero-shot classification."""

from __future__ import annotations

#: domain id -> descriptive prompts (their mean embedding is the domain's prototype).
DOMAIN_PROMPTS: dict[str, tuple[str, ...]] = {
    "animals": (
        "a paragraph about an animal species: mammals, birds, insects, fish, wildlife and pets",
        "zoology: how an animal lives, feeds, breeds and behaves in its habitat",
        "insects such as bees, ants and butterflies, living in colonies, nests and hives",
    ),
    "plants": (
        "a paragraph about plants: trees, flowers, grasses, mosses and their leaves, seeds and roots",
        "botany: a plant species, how it grows, reproduces and where it grows",
    ),
    "food_drink": (
        "a paragraph about food and drink: a dish, a beverage, cooking and cuisine",
        "recipes, ingredients, meals, baking, restaurants, coffee, tea and desserts",
    ),
    "architecture_landmarks": (
        "a paragraph about architecture and landmarks: buildings, towers, monuments and famous sights",
        "building design and construction: walls, domes, arches, cathedrals, skyscrapers and masonry",
    ),
    "vehicles_transport": (
        "a paragraph about vehicles and transport: cars, motorcycles, bicycles, trains, ships and aircraft",
        "transportation of passengers and cargo by road, rail, sea and air",
    ),
    "people": (
        "a biography of a famous person: who they were, where they were born, their life and death",
        "a paragraph about a person's life story, family, career and achievements",
    ),
    "sports": (
        "a paragraph about sports: games, athletes, teams, matches, races and tournaments",
        "a sport's rules, players, scoring, competitions and championships",
    ),
    "arts_culture": (
        "a paragraph about the arts and culture: painting, photography, sculpture, dance and design",
        "visual art, artists, artworks, museums, galleries and artistic technique",
    ),
    "science_technology": (
        "a paragraph about science and technology: physics, astronomy, engineering, electronics and computing",
        "scientific research, telescopes, space technology, computers, software and artificial intelligence",
        "algorithms and computer software that recognise images, speech and text",
    ),
    "geography_nature": (
        "a paragraph about geography and nature: mountains, rivers, deserts, forests, oceans and landforms",
        "the natural landscape and physical geography of a region, its climate, rocks and terrain",
    ),
    "history_events": (
        "a paragraph about history and historical events: wars, revolutions, empires and famous dates",
        "what happened in the past: ancient civilisations, battles, political upheaval and historic moments",
        "a famous historical event on a specific date, remembered and watched by millions of people",
    ),
    "music_entertainment": (
        "a paragraph about music and entertainment: songs, bands, musical instruments, films and video games",
        "musicians, concerts, albums, opera, movies, television and games for entertainment",
        "film series, movie characters, video games, game consoles and popular culture franchises",
    ),
    "everyday_objects": (
        "a paragraph about an everyday object: a household item, tool or accessory people use daily",
        "common objects at home and in the office, what they are made of and how they are used",
    ),
    "health_medicine": (
        "a paragraph about health and medicine: diseases, treatment, doctors, hospitals and patients",
        "medical diagnosis, vaccines, the human body, medical imaging and healthcare",
    ),
    "business_economy": (
        "a paragraph about business and the economy: companies, markets, money, trade and finance",
        "economics: prices, inflation, banks, currencies, stocks, investors and economic growth",
    ),
}

DOMAINS: tuple[str, ...] = tuple(DOMAIN_PROMPTS)
