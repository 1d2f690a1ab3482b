"""The chat page of ``roomstreams up`` in headless Chromium: two pages join one room, see each
other, exchange messages (LiveKit's chat format: the message as a text stream on ``lk.chat``)
and a file (progress bar, then a download with the same bytes); a Python participant's reply
streamed token by token grows in both pages chunk by chunk; the agent example's reply does
too. Assertions are on the pages' text; screenshots are saved as artifacts."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

import roomstreams
from examples.agent import Agent

from .conftest import API_KEY, API_SECRET, DevSystem

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

expect.set_options(timeout=15_000)

#: Installed in each page before it loads: every text a message bubble shows, in order, as
#: ``[sender, text]`` (the page replaces a bubble's text node at each chunk), so a test can
#: check afterwards that a reply grew chunk by chunk, however fast the chunks came.
RECORD_TEXTS = """
window.__texts = [];
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) {
    const bubble = n.nodeType === Node.TEXT_NODE && n.parentElement?.classList.contains("text")
      ? n.parentElement.closest(".msg") : null;
    if (bubble) window.__texts.push([bubble.dataset.from, n.data]);
  }
}).observe(document, { subtree: true, childList: true });
"""


class ChatPage:
    """One person's tab, in a browser context of its own; JS errors are collected."""

    @classmethod
    async def open(cls, context: BrowserContext, who: str) -> ChatPage:
        page = await context.new_page()
        await page.add_init_script(RECORD_TEXTS)
        return cls(page, who)

    def __init__(self, page: Page, who: str) -> None:
        self.page = page
        self.who = who
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"{who}: {exc}"))
        page.on(
            "console",
            lambda m: self.errors.append(f"{who} console: {m.text}") if m.type == "error" else None,
        )

    async def join(self, url: str, room: str, identity: str, name: str) -> None:
        p = self.page
        await p.goto(url)
        await p.fill("#join input[name=room]", room)
        await p.fill("#join input[name=identity]", identity)
        await p.fill("#join input[name=name]", name)
        await p.click("#join button")
        await expect(p.locator("#status")).to_have_attribute("data-state", "connected")
        await expect(p.locator("#chat")).to_be_visible()

    async def say(self, text: str) -> None:
        await self.page.fill("#message", text)
        await self.page.press("#message", "Enter")

    def bubbles(self, sender: str) -> Locator:
        return self.page.locator(f'#messages .msg.text[data-from="{sender}"]')

    def texts(self, sender: str) -> Locator:
        return self.bubbles(sender).locator(".text")

    def person(self, identity: str) -> Locator:
        return self.page.locator(f'#participants .participant[data-identity="{identity}"]')

    async def texts_from(self, sender: str) -> list[str]:
        """Every text the page showed in ``sender``'s incoming bubbles, in order."""
        seen: list[list[str]] = await self.page.evaluate("window.__texts")
        return [text for who, text in seen if who == sender]

    async def shot(self, artifacts: Path, step: str) -> None:
        path = artifacts / f"{step}-{self.who}.png"
        await self.page.screenshot(path=str(path), full_page=True)


@contextlib.asynccontextmanager
async def two_pages(
    browser: Browser, dev: DevSystem, room: str
) -> AsyncIterator[tuple[ChatPage, ChatPage]]:
    contexts = [await browser.new_context(accept_downloads=True) for _ in range(2)]
    try:
        alice = await ChatPage.open(contexts[0], "alice")
        bob = await ChatPage.open(contexts[1], "bob")
        await alice.join(dev.page_url, room, "alice", "Alice")
        await bob.join(dev.page_url, room, "bob", "Bob")
        yield alice, bob
        assert alice.errors + bob.errors == []
    finally:
        for c in contexts:
            await c.close()


async def test_two_pages_chat_a_file_and_a_streamed_reply(
    browser: Browser, dev_system: DevSystem, artifacts: Path
) -> None:
    room = f"room-{uuid.uuid4().hex[:10]}"
    heard: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()

    async def on_chat(reader: roomstreams.TextStreamReader, sender: str) -> None:
        heard.put_nowait((sender, reader.info.topic, await reader.read_all()))

    async with two_pages(browser, dev_system, room) as (alice, bob), roomstreams.Room() as py:
        # presence: each page lists the other by display name
        await expect(alice.person("bob")).to_have_text("Bob")
        await expect(bob.person("alice")).to_have_text("Alice")
        await expect(alice.person("alice")).to_have_text("Alice (you)")

        py.register_text_stream_handler("lk.chat", on_chat)
        await py.connect(dev_system.ws_url, dev_system.token(room, "py", "Python"))
        for page in (alice, bob):
            await expect(page.person("py")).to_have_text("Python")
        await py.local_participant.set_name("Python 3")
        for page in (alice, bob):
            await expect(page.person("py")).to_have_text("Python 3")

        # messages both ways; a LiveKit chat component reads them: plain text on lk.chat
        await alice.say("hello from alice ✓")
        await expect(bob.texts("alice")).to_have_text(["hello from alice ✓"])
        await expect(bob.bubbles("alice").last).to_have_attribute("data-state", "done")
        await expect(alice.texts("alice")).to_have_text(["hello from alice ✓"])
        await expect(alice.bubbles("alice").last).to_have_attribute("data-state", "done")
        assert await asyncio.wait_for(heard.get(), 15) == ("alice", "lk.chat", "hello from alice ✓")
        await bob.say("hi alice")
        await expect(alice.texts("bob")).to_have_text(["hi alice"])
        assert await asyncio.wait_for(heard.get(), 15) == ("bob", "lk.chat", "hi alice")

        # a file from bob: his progress bar fills, alice downloads the same bytes
        data = random.Random(9).randbytes(700_000)
        await bob.page.set_input_files(
            "#file", files=[{"name": "notes.bin", "mimeType": "application/octet-stream",
                             "buffer": data}]
        )
        await bob.page.click("#file-form button")
        sent = bob.page.locator("#messages .msg.file.mine").last
        await expect(sent).to_have_attribute("data-state", "done")
        assert await sent.locator("progress").evaluate("p => p.value") == 1
        got = alice.page.locator('#messages .msg.file[data-from="bob"]').last
        await expect(got.locator(".file-name")).to_have_text("notes.bin 683.6 KB")
        await expect(got).to_have_attribute("data-state", "done")
        assert await got.locator("progress").evaluate("p => p.value") == 1
        async with alice.page.expect_download() as download_info:
            await got.locator("a.download").click()
        download = await download_info.value
        assert download.suggested_filename == "notes.bin"
        assert await asyncio.to_thread(Path(await download.path()).read_bytes) == data

        # a reply streamed token by token from Python grows in both pages, chunk by chunk
        tokens = ["Streaming", " a", " reply", " token", " by", " token."]
        writer = await py.local_participant.stream_text(topic="lk.chat")
        text = ""
        async with writer:
            for i, token in enumerate(tokens):
                await writer.write(token)
                text += token
                for page in (alice, bob):
                    bubble = page.bubbles("py").last
                    await expect(bubble.locator(".text")).to_have_text(text)
                    await expect(bubble).to_have_attribute("data-state", "streaming")
                if i == 2:  # half-way: the reply is visibly still streaming
                    await alice.shot(artifacts, "1-streaming")
                    await bob.shot(artifacts, "1-streaming")
        prefixes = ["".join(tokens[: i + 1]) for i in range(len(tokens))]
        for page in (alice, bob):
            await expect(page.bubbles("py").last).to_have_attribute("data-state", "done")
            await expect(page.bubbles("py").last.locator(".text")).to_have_text(text)
            assert await page.texts_from("py") == prefixes
            await page.shot(artifacts, "2-done")

        # a sender that leaves mid-stream: the bubble keeps what came and says why it ended
        await (await py.local_participant.stream_text(topic="lk.chat")).write("half a th")
        for page in (alice, bob):
            await expect(page.texts("py").last).to_have_text("half a th")
        await py.disconnect()
        for page in (alice, bob):
            await expect(page.person("py")).to_have_count(0)
            await expect(page.bubbles("py").last).to_have_attribute("data-state", "aborted")
            await expect(page.bubbles("py").last.locator(".note")).to_contain_text(
                "sender_left"
            )
        await alice.shot(artifacts, "3-sender-left")


async def test_agent_example_streams_its_reply_into_the_page(
    browser: Browser, dev_system: DevSystem, artifacts: Path
) -> None:
    room = f"room-{uuid.uuid4().hex[:10]}"
    agent = Agent(
        url=dev_system.ws_url,
        redis_url=dev_system.redis_url,
        api_key=API_KEY,
        api_secret=API_SECRET,
        group=f"echo-agent-{room}",
        word_delay=0.05,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.ready.wait(), 30)
        async with two_pages(browser, dev_system, room) as (alice, bob):
            for page in (alice, bob):
                await expect(page.person("agent")).to_be_visible(timeout=30_000)
            await alice.say("hello brave new world")
            reply = "you said: world new brave hello"
            words = reply.split(" ")
            prefixes = [" ".join(words[: i + 1]) for i in range(len(words))]
            for page in (alice, bob):
                bubble = page.bubbles("agent").last
                await expect(bubble.locator(".text")).to_have_text(reply)
                await expect(bubble).to_have_attribute("data-state", "done")
                # it grew word by word: the page showed each prefix in turn
                assert await page.texts_from("agent") == prefixes
            await alice.shot(artifacts, "agent-done")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
