// Drives a Kestrel node with ethers v6 and viem the way a dapp does.
// Usage: node wallets.mjs http://127.0.0.1:8545
// Prints "ok <check>" lines and exits non-zero on the first failure.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { ethers } from "ethers";
import { createPublicClient, createWalletClient, defineChain, http, parseEther, getContract } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const url = process.argv[2];
if (!url) { console.error("usage: node wallets.mjs RPC_URL"); process.exit(2); }
const here = dirname(fileURLToPath(import.meta.url));
const erc20 = JSON.parse(readFileSync(join(here, "..", "artifacts", "ERC20.json"), "utf8"));
const KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

// ethers v6 answers an identical request made within 250 ms from its cache, so
// on a chain this fast a second send could reuse the first one's pending nonce.
// Wallets that send in bursts use ethers.NonceManager; this script just waits.
const settle = () => new Promise((r) => setTimeout(r, 300));

function check(cond, what) {
  if (!cond) { throw new Error("check failed: " + what); }
  console.log("ok " + what);
}

async function withEthers() {
  const provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true, pollingInterval: 100 });
  const net = await provider.getNetwork();
  check(net.chainId === 31337n, "ethers: chain id 31337");
  const alice = new ethers.Wallet(KEY0, provider);
  const bob = new ethers.Wallet(KEY1, provider);
  check((await provider.getBalance(alice.address)) > 0n, "ethers: balance");
  const latest = await provider.getBlock("latest");
  const pending = await provider.getBlock("pending");
  check(latest !== null && latest.hash !== null && pending !== null, "ethers: latest and pending blocks");
  const fee = await provider.getFeeData();
  check(fee.maxFeePerGas !== null && fee.gasPrice !== null, "ethers: fee data");

  // EIP-1559, EIP-2930 and legacy transfers, each waited for.
  for (const type of [2, 1, 0]) {
    await settle();
    const tx = await alice.sendTransaction({ to: bob.address, value: 1000n + BigInt(type), type });
    const r = await tx.wait();
    check(r.status === 1 && r.type === type && r.blockHash !== null, `ethers: type ${type} transfer mined`);
  }
  // Deploy an ERC-20, transfer tokens, read balances and logs.
  await settle();
  const factory = new ethers.ContractFactory(erc20.abi, erc20.bytecode, alice);
  const token = await factory.deploy("Kestrel", "KST", ethers.parseEther("1000"));
  await token.waitForDeployment();
  const addr = await token.getAddress();
  check((await provider.getCode(addr)) === erc20.deployedBytecode, "ethers: deployed code");
  const gas = await token.transfer.estimateGas(bob.address, 77n);
  check(gas > 21000n, "ethers: estimate gas");
  await settle();
  const r = await (await token.transfer(bob.address, 77n)).wait();
  check(r.status === 1 && r.logs.length === 1, "ethers: token transfer receipt with a log");
  check((await token.balanceOf(bob.address)) === 77n, "ethers: balanceOf");
  const events = await token.queryFilter(token.filters.Transfer(alice.address, bob.address), 0, "latest");
  check(events.length === 1 && events[0].args[2] === 77n, "ethers: Transfer logs");
  try {
    await token.connect(bob).transfer.staticCall(alice.address, ethers.parseEther("5000"));
    check(false, "ethers: revert expected");
  } catch (e) {
    check(e.reason === "ERC20: transfer amount exceeds balance", "ethers: revert reason (" + e.reason + ")");
  }
  await settle();
  const nonceLatest = await provider.getTransactionCount(alice.address, "latest");
  const noncePending = await provider.getTransactionCount(alice.address, "pending");
  check(noncePending >= nonceLatest && noncePending === 5, "ethers: latest and pending nonces");
  const slot = await provider.getStorage(addr, 2);
  check(BigInt(slot) === ethers.parseEther("1000"), "ethers: storage (total supply slot)");
  return { token: addr };
}

async function withViem(tokenAddr) {
  const kestrel = defineChain({ id: 31337, name: "kestrel-dev", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } } });
  const pub = createPublicClient({ chain: kestrel, transport: http(url), pollingInterval: 100 });
  const account = privateKeyToAccount(KEY1);
  const wallet = createWalletClient({ account, chain: kestrel, transport: http(url) });
  check((await pub.getChainId()) === 31337, "viem: chain id");
  const before = await pub.getBalance({ address: "0x000000000000000000000000000000000000dEaD" });
  const hash = await wallet.sendTransaction({ to: "0x000000000000000000000000000000000000dEaD", value: parseEther("0.5") });
  const r = await pub.waitForTransactionReceipt({ hash });
  check(r.status === "success", "viem: transfer receipt");
  const after = await pub.getBalance({ address: "0x000000000000000000000000000000000000dEaD" });
  check(after - before === parseEther("0.5"), "viem: balance moved");
  const token = getContract({ address: tokenAddr, abi: erc20.abi, client: { public: pub, wallet } });
  check((await token.read.balanceOf([account.address])) === 77n, "viem: readContract");
  try {
    await pub.simulateContract({ address: tokenAddr, abi: erc20.abi, functionName: "transfer", args: [account.address, 10n ** 30n], account });
    check(false, "viem: revert expected");
  } catch (e) {
    check(String(e.message).includes("ERC20: transfer amount exceeds balance"), "viem: revert reason");
  }
  const block = await pub.getBlock({ blockTag: "latest" });
  check(block.baseFeePerGas !== null && block.hash !== null, "viem: latest block");
}

try {
  const { token } = await withEthers();
  await withViem(token);
  console.log("all wallet checks passed");
} catch (e) {
  console.error(e);
  process.exit(1);
}
